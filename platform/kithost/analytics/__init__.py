"""Analytics: events from loaders and servers in, rollups and error groups out."""
