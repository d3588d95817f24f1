"""Music backends: write the film's score from its moods (one module or package each)."""
