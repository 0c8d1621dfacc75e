"""Tests of the FlowApp framework (calflow.flowapp)."""
