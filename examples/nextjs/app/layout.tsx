import type { ReactNode } from "react";

export const metadata = { title: "Example site with llmxt Pro" };

export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body style={{ fontFamily: "system-ui, sans-serif", maxWidth: "40rem", margin: "2rem auto", lineHeight: 1.5 }}>
        {children}
      </body>
    </html>
  );
}
