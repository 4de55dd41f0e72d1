from django.dispatch import Signal

# Sent with `user` and `invitation` once an invitation created an account; the annotation app
# listens and adds the project memberships the invitation named.
invitation_accepted = Signal()
