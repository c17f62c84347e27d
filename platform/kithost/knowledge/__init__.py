"""Knowledge bases: a tenant's documents, indexed in OpenAI vector stores with the tenant's
key, for agents' ``file_search``."""
