"""``hydra/sweeper=random``: random search over a method's hyperparameters (seed 001, after
Bergstra & Bengio), as a Hydra sweeper so that every trial is an ordinary multirun job."""
