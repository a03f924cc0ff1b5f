"""`evi demo`: the main job on the embedded default, with sandbox authorities."""
