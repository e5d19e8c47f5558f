"""Command parsing: what the robot heard -> an action and a referring expression."""
from .parser import Command, CommandAction, CommandError, parse_command

__all__ = ['Command', 'CommandAction', 'CommandError', 'parse_command']
