"""Integration tests against real servers on loopback: unbound, rbldnsd and Postfix started by the fixtures."""
