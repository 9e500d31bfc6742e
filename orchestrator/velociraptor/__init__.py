"""connhunt's side of a Velociraptor deployment: the gRPC API client (api.py) and resumable hunt pulls (pull.py)."""
