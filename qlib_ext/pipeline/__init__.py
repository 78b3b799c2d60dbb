"""The main job's stages and the experiment sweep (SPEC section 8), cached by config hash."""
