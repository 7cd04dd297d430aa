"""The scan-driven stock flows: definitions, steps and views; the controller is app.routes.operations."""
