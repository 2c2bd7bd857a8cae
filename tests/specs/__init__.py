"""Tests of the spec service, the spec file format and Spec validation."""
