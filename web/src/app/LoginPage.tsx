// Placeholder: replaced by the app pages.
export function LoginPage() {
  return <p>login</p>;
}
