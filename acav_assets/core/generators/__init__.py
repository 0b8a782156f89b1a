"""Data generators: the demo corpus, bad inputs, planted cluster labels."""
