"""Streaming a version's files for training, without pulling them (``etcetera.stream``)."""
