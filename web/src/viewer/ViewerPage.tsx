// Placeholder: replaced by the viewer.
export default function ViewerPage() {
  return <p>viewer</p>;
}
