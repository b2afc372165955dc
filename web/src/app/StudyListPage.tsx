// Placeholder: replaced by the app pages.
export function StudyListPage() {
  return <p>studies</p>;
}
