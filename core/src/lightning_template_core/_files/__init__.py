"""Files: written whole or not at all, downloaded and verified, text decoded strictly."""
