"""Everything that talks to Elasticsearch: the client factory, query files, query building."""
