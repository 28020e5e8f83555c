"""The kopf operator: MessageTemplate resources in, rows of the templates table out."""
