"""The chaos run: the whole pipeline under load while each part is killed or restarted."""
