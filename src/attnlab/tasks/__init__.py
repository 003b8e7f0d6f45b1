"""What the training loop trains: one task per model kind (batches, loss, evaluation)."""
