"""Named read queries, one per screen or fragment, shared by pages, fragments and the API."""
