"""Inference: checkpoint -> engine -> predictor (``loading``), the decision settings
(``settings``), the encode-once predictor (``predictor``), the answer step that turns a frame
into geometry (``answer``), a followed command (``session``) and the metric attribute head
(``metric_attributes``). Between the engines and the ROS node; imports neither rclpy nor MuJoCo."""
