"""Helpers shared by the tests: real peers (servers, processes) and small utilities."""
