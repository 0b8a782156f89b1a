"""Clip features: the extractor interface, weight-free extractors, pretrained backbones, the
profiles that name them, and the embedding pipeline."""
