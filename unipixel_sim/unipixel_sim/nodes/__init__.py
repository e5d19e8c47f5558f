"""ROS 2 nodes of the simulation: ``sim_camera`` (scene + RGB-D camera) and ``grasp_executor``
(Panda grasps). They only convert messages and call :mod:`unipixel_sim` APIs."""
