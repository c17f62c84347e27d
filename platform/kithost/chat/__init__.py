"""The self-hosted ChatKit runtime: Kithost answers ``POST /v1/chatkit/{pk}`` itself."""
