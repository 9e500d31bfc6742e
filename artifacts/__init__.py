"""connhunt's artifact files (Velociraptor YAML, osquery pack), shipped inside the wheel."""
