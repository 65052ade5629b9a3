"""Objectives: what a prompt should achieve, as a loss over prompt embeddings (lower is better)."""
