"""Latency studies of the papers' design choices: activations, SE and skip connections, attention, UIB."""
