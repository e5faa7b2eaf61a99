"""Text-to-moment retrieval: clip features, models, the predictor API and the official evaluation."""
