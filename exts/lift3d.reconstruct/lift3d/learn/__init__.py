"""The learned vehicle predictor: training data, network, model files, training and inference."""
