// Compile-time declarations of the few `next/server` names this package uses, so that building
// it does not install Next.js. The emitted next.d.ts imports the real ones from the
// consumer's `next` (a peer dependency).
declare module "next/server" {
  export class NextRequest extends Request {
    readonly nextUrl: URL;
  }
  export class NextResponse extends Response {
    /** `request.headers`: the headers the page renders with (Next.js `MiddlewareResponseInit`). */
    static next(init?: ResponseInit & { request?: { headers?: Headers } }): NextResponse;
    static redirect(url: string | URL, init?: number | ResponseInit): NextResponse;
    static rewrite(destination: string | URL, init?: ResponseInit): NextResponse;
  }
}
declare const process: { env: Record<string, string | undefined> };
