"""autotrain_pl: Lightning-based post-training for language models."""
