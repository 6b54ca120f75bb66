/**
 * A response's body, read chunk by chunk and counted in bytes: past `maxBytes` the download is
 * cancelled and null returned, so a huge or endless answer never sits in memory whole. A
 * `Content-Length` already above the cap is refused before anything is read.
 */
export async function readBoundedBody (response: Response, maxBytes: number): Promise<Buffer | null> {
  const body = response.body
  if (body === null) return Buffer.alloc(0)
  if (Number(response.headers.get('content-length')) > maxBytes) {
    await body.cancel()
    return null
  }
  const reader = body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return Buffer.concat(chunks, size)
    size += value.byteLength
    if (size > maxBytes) {
      await reader.cancel()
      return null
    }
    chunks.push(value)
  }
}
