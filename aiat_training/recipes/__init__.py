"""End-to-end recipes: render or read data, fine-tune, export a bundle, cache it."""
