"""The training library behind `train.py`: data to stored flow, folds of each protocol, epoch selection,
the loop, run state on disk. Nothing here ships with a model."""
