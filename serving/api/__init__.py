"""The HTTP service: the JSON API (BentoML with a FastAPI app) and what it serves from."""
