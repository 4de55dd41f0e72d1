from django.dispatch import Signal

# Sent with `user` and `invitation` once an invitation created an account; the annotation app
# listens and adds the project memberships the invitation named.
invitation_accepted = Signal()

# Sent with `inviter` (a User) and `slugs` (project slugs) before an invitation is created; a
# receiver returns the set of those slugs the inviter may invite to (the annotation app: the projects
# they manage). Without any receiver only admins may invite.
invitation_projects_check = Signal()
