"""Litestar controllers: parse input, call one service, choose a template."""
