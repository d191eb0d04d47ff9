"""The demo: a synthetic The Model org in the embedded CRM, pushed through the real pipeline."""
