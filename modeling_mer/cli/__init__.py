"""Command-line tools: `python -m modeling_mer.cli.predict` (run a model on a video),
`python -m modeling_mer.cli.convert_slstt` (official checkpoints) and the explanation figure behind
`predict --explain`. Nothing here ships with a model."""
