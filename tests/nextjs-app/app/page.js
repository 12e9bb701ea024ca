export default function Home() {
  return <p>knext test app</p>;
}
