"""Audio backends: score, narration, effects."""
