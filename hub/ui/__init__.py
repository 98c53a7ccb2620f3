"""Gradio UI builders: the app ``evalhub serve`` runs and the Spaces in ``spaces/`` import.

Importing this package imports nothing heavy; ``hub.ui.app`` pulls in gradio.
"""
