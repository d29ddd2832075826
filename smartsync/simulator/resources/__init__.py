"""The simulated Graph API, one module a resource; `simulator.api.GraphApi` joins them."""
