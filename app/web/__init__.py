"""Web plumbing shared by the routes: context, authentication, access policy, i18n, errors, headers."""
