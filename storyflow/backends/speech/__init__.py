"""Speech backends: speak the narration, with word timings where they know them (one module or package each)."""
