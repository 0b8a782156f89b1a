"""Media: listing and probing files, the landing area, clip windows and shots, decoding, encoding."""
