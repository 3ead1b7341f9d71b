// Small pieces every page uses.

/** A labelled input: the label names it for screen readers. */
export function Field({ label, id, ...props }) {
  return (
    <div class="field">
      <label for={id}>{label}</label>
      <input id={id} name={id} {...props} />
    </div>
  );
}

/** An error from a form's last submission, announced when it appears. */
export function FormError({ error }) {
  return error ? (
    <p class="error" role="alert">
      {error}
    </p>
  ) : null;
}
