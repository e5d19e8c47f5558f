"""MuJoCo tabletop world for unipixel_ros.

Planned contents (see the project issues): scene generator, referring-expression generator and
resolver, dataset writer (through ``unipixel_ros.dataset``), simulated RGB-D camera node and a
Panda grasp executor. Dependencies point one way: unipixel_sim may import unipixel_ros, never the
reverse (except lazily from the orchestrating CLI commands).
"""
