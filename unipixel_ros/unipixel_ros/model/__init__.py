"""The referring-segmentation model (pure torch): network, text encoder, losses, metrics,
training, evaluation and the predictor API. Never imports MuJoCo or rclpy."""
