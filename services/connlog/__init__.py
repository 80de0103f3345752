"""connlog: WiFi and network client connection events, stored once and served in
every caller's shape."""
